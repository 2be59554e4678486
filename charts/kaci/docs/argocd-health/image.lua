-- Argo CD health check for kaci.dev/Image (resource.customizations.health.kaci.dev_Image).
-- Argo CD runs this with the live object in `obj` and expects {status, message} back.
-- Rules, in order:
--   no status yet, or status older than the spec           -> Progressing
--   state Failed                                           -> Degraded (with the reason)
--   state Succeeded and condition Ready=True               -> Healthy
--   anything else (NotStarted, Running)                    -> Progressing
local hs = {}

local function ready_condition(status)
  if status.conditions == nil then return nil end
  for _, c in ipairs(status.conditions) do
    if c.type == "Ready" then return c end
  end
  return nil
end

local function lags(observed, generation)
  return generation ~= nil and (observed == nil or observed < generation)
end

local status = obj.status
local generation = obj.metadata and obj.metadata.generation
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the kaci operator to report status"
  return hs
end
local ready = ready_condition(status)
if lags(status.observedGeneration, generation) or (ready ~= nil and ready.observedGeneration ~= nil and lags(ready.observedGeneration, generation)) then
  hs.status = "Progressing"
  hs.message = "Waiting for the kaci operator to observe generation " .. tostring(generation)
  return hs
end

local state = status.state
if state == "Failed" then
  hs.status = "Degraded"
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = "Build failed: " .. ready.message
  else
    hs.message = "Build failed"
  end
  return hs
end
if state == "Succeeded" and ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Built " .. tostring(status.imageLocation)
  return hs
end
hs.status = "Progressing"
hs.message = "Build " .. tostring(state or "NotStarted")
return hs
