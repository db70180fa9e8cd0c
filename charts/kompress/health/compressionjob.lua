-- Argo CD health check for kompress.dev/CompressionJob.
-- Install it as resource.customizations.health.kompress.dev_CompressionJob
-- in the argocd-cm ConfigMap (see charts/kompress/README.md).
--
-- It reads the conditions the controller keeps with kstatus polarity, so it
-- agrees with `kubectl wait --for=condition=Ready` and with Flux:
--   Stalled=True            -> Degraded   (the run failed; the spec must change)
--   Suspended=True          -> Suspended  (spec.suspend holds the run)
--   Ready=True              -> Healthy    (the final model is in status.output)
--   anything else           -> Progressing (stages pending, running, unschedulable)
-- A status the controller wrote for an older generation is Progressing: the
-- new spec has not been acted on yet.
local hs = {status = "Progressing", message = "Waiting for the kompress controller to report status"}
if obj.status == nil then
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the kompress controller to observe generation " .. tostring(generation)
  return hs
end

local conditions = {}
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    conditions[c.type] = c
  end
end

local function isTrue(t)
  return conditions[t] ~= nil and conditions[t].status == "True"
end

local function describe(c)
  local text = ""
  if c.reason ~= nil and c.reason ~= "" then
    text = c.reason
  end
  if c.message ~= nil and c.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. c.message
  end
  return text
end

if isTrue("Stalled") then
  hs.status = "Degraded"
  hs.message = describe(conditions["Stalled"])
  return hs
end
if isTrue("Suspended") then
  hs.status = "Suspended"
  hs.message = describe(conditions["Suspended"])
  return hs
end
if isTrue("Ready") then
  hs.status = "Healthy"
  hs.message = describe(conditions["Ready"])
  return hs
end

if conditions["Ready"] ~= nil then
  hs.message = describe(conditions["Ready"])
end
if obj.status.progress ~= nil then
  hs.message = "stages " .. obj.status.progress .. " done; " .. hs.message
end
return hs
