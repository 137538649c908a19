-- What a rig's agents may do: `write` (clone and push, as every rig did before) or `read` (clone and
-- fetch). Tokens follow it: GitHub `contents: read`, GitLab project tokens `read_repository`.
CREATE TYPE "RigAccess" AS ENUM ('read', 'write');

ALTER TABLE "gastown_rigs" ADD COLUMN "access" "RigAccess" NOT NULL DEFAULT 'write';

-- A rig on a lite GitHub App installation has only ever had read-only tokens: say so.
UPDATE "gastown_rigs" r SET "access" = 'read'
FROM "platform_integrations" i
WHERE i."id" = r."platform_integration_id" AND i."provider" = 'github' AND i."github_app_type" = 'lite';

-- A rig's GitLab project token records the access it was made for (its scope), so a token of the
-- other scope is never handed out after the rig's access changed. Every token so far: write_repository.
ALTER TABLE "rig_project_tokens" ADD COLUMN "access" "RigAccess" NOT NULL DEFAULT 'write';

-- The access a dispatch's GitHub token was minted for: when a rig switches to read, the token it
-- replaces (which could write) is revoked at once instead of being kept for the stop.
ALTER TABLE "token_leases" ADD COLUMN "access" "RigAccess";
