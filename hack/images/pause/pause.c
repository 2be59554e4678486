/* The kubelet's sandbox ("pause") container: holds the Pod's namespaces open,
 * reaps orphaned children (it is PID 1 when the Pod shares its PID namespace),
 * and exits 0 on SIGINT/SIGTERM. Built with gcc -static into a FROM-scratch image. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v') {
        puts("kaci-pause 3.9");
        return 0;
    }
    struct sigaction stop = {.sa_handler = on_stop};
    struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
        sigaction(SIGCHLD, &child, NULL) < 0) {
        perror("sigaction");
        return 1;
    }
    if (getpid() != 1) {
        fputs("warning: pause is not PID 1\n", stderr);
    }
    for (;;) {
        pause();
    }
}
