-- Argo CD health check for kaci.dev/Model (resource.customizations.health.kaci.dev_Model).
-- Argo CD runs this with the live object in `obj` and expects {status, message} back.
-- A Model has no state field: its health is its Ready condition.
--   no status yet, or status older than the spec           -> Progressing
--   Ready=True                                             -> Healthy
--   Ready=False with a failure reason: the operator's BadSource,
--   ConfigMapNotFound, PVCNotFound, DownloadFailed,
--   ImageReadFailed, or any reason ending in Failed, Invalid,
--   Error, NotFound, Refused or Mismatch (it needs a fix
--   from the user, not more time)                          -> Degraded
--   anything else                                          -> Progressing
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

local failure_reasons = { BadSource = true }
local failure_suffixes = { "Failed", "Invalid", "Error", "NotFound", "Refused", "Mismatch" }
local function is_failure(reason)
  if reason == nil then return false end
  if failure_reasons[reason] then return true end
  for _, suffix in ipairs(failure_suffixes) do
    if string.sub(reason, -string.len(suffix)) == suffix then return true end
  end
  return false
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
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Version " .. tostring(status.version) .. " (" .. tostring(status.digest) .. ")"
  return hs
end
if ready ~= nil and ready.status == "False" and is_failure(ready.reason) then
  hs.status = "Degraded"
  hs.message = tostring(ready.reason) .. ": " .. tostring(ready.message)
  return hs
end
hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil then
  hs.message = ready.message
else
  hs.message = "Waiting for the Model's files"
end
return hs
