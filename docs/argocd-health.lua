-- Argo CD health check for the barrack.ai kinds (BarrackVolume, BarrackInstance, BarrackFirewall,
-- BarrackSSHKey). Argo CD runs it with the object as `obj`; it reads the operator's conditions:
--   Stalled=True                       Degraded   (only a person can fix it; the reason says what)
--   Synced=False ReconcilePaused       Suspended  (the annotation barrack.ai/paused)
--   Ready=True and Synced=True         Healthy
--   anything else, or an old status    Progressing
local hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report"
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "The operator has not handled the latest spec yet"
  return hs
end
local conditions = {}
for _, condition in ipairs(obj.status.conditions) do
  conditions[condition.type] = condition
end
local function describe(condition)
  return (condition.reason or "") .. ": " .. (condition.message or "")
end
local stalled, synced, ready = conditions["Stalled"], conditions["Synced"], conditions["Ready"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end
if synced ~= nil and synced.reason == "ReconcilePaused" then
  hs.status = "Suspended"
  hs.message = describe(synced)
  return hs
end
if ready ~= nil and ready.status == "True" and (synced == nil or synced.status == "True") then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
hs.status = "Progressing"
if ready ~= nil and ready.status ~= "True" then
  hs.message = describe(ready)
elseif synced ~= nil then
  hs.message = describe(synced)
end
return hs
