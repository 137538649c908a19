// Associated-data labels for encrypted columns. Binding each ciphertext to its row and column
// means a ciphertext copied into another row (or column) fails to decrypt instead of leaking.

export const townTokenContext = (townId: string, host: string) => `town:${townId}:${host}`;
export const gitlabTokenContext = (integrationId: string, kind: 'access' | 'refresh') => `integration:${integrationId}:${kind}`;
export const leaseTokenContext = (dispatchId: string) => `lease:${dispatchId}`;
export const containerTokenContext = (dispatchId: string) => `container:${dispatchId}`;
export const identityTokenContext = (identityId: string, kind: 'access' | 'refresh') => `identity:${identityId}:${kind}`;
export const projectTokenContext = (rowId: string) => `project-token:${rowId}`;
export const pendingRevocationContext = (rowId: string) => `pending-revocation:${rowId}`;
