from kaci_runtime.cli import main

raise SystemExit(main())
