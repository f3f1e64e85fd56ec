/**
 * A Kamal rollback, in the order it runs: plan.ts (validate, read every host, refuse or plan),
 * then execute.ts runs the plan's phases: preflight.ts (the lock with the checks again),
 * prepare.ts (assets, error pages), boot.ts (each host's roles), finish.ts (tag, unlock, read
 * back, outcome). This is the room's door: the rest of the code imports from here.
 */
export * from './types';
export { planKamalRollback, KamalLockHeldError, type PlanKamalRollbackInput } from './plan';
export { executeKamalRollback, type ExecuteKamalRollbackDeps, type KamalRollbackResult } from './execute';
export { assemblePlan } from './assemble';
export { literalPattern, resolveKamalScope, scopeRequestFromPicks, splitScopeList, describeScopeRequest, type KamalScope, type KamalScopeRequest } from './scope';
export { agreeToWriteEnvFiles } from './assemble';
