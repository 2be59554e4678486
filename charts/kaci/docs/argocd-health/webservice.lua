-- Argo CD health check for kaci.dev/Webservice (resource.customizations.health.kaci.dev_Webservice).
-- Argo CD runs this with the live object in `obj` and expects {status, message} back.
-- Rules, in order:
--   no status yet, or status older than the spec (observedGeneration < generation,
--   on the status or on its Ready condition)               -> Progressing
--   state Failed / Unhealthy / Unschedulable               -> Degraded (with the reason)
--   state Healthy and condition Ready=True                 -> Healthy
--   anything else (Transitioning, Ready=False, no state)   -> Progressing
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
if state == "Failed" or state == "Unhealthy" or state == "Unschedulable" then
  hs.status = "Degraded"
  if status.error ~= nil and status.error.message ~= nil then
    hs.message = state .. ": " .. status.error.message
  elseif ready ~= nil and ready.message ~= nil then
    hs.message = state .. ": " .. ready.message
  else
    hs.message = state
  end
  return hs
end
if state == "Healthy" and ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Serving at " .. tostring(status.scoringUri)
  return hs
end
hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
else
  hs.message = "State " .. tostring(state)
end
return hs
