// Workflow bundle entry: every workflow the worker registers.
export { gitTokenWorkflow } from './git-token-workflow';
