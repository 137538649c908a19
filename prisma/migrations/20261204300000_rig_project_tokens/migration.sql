-- CreateEnum
CREATE TYPE "CredentialScope" AS ENUM ('repository', 'account', 'static');

-- CreateEnum
CREATE TYPE "ProjectTokenStatus" AS ENUM ('active', 'fallback', 'revoking', 'revoked');

-- AlterTable
ALTER TABLE "agent_dispatches" ADD COLUMN     "credential_scope" "CredentialScope",
ADD COLUMN     "credential_scope_reason" TEXT;

-- CreateTable
CREATE TABLE "rig_project_tokens" (
    "id" UUID NOT NULL,
    "rig_id" UUID,
    "integration_id" UUID NOT NULL,
    "project_id" BIGINT NOT NULL,
    "gitlab_token_id" BIGINT,
    "token_enc" TEXT,
    "expires_on" VARCHAR(10),
    "usable_until" TIMESTAMPTZ(3),
    "version" INTEGER NOT NULL DEFAULT 0,
    "status" "ProjectTokenStatus" NOT NULL DEFAULT 'active',
    "fallback_code" VARCHAR(40),
    "fallback_reason" TEXT,
    "last_tried_at" TIMESTAMPTZ(3),
    "issued_at" TIMESTAMPTZ(3),
    "rotated_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "rig_project_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "rig_project_tokens_rig_id_key" ON "rig_project_tokens"("rig_id");

-- CreateIndex
CREATE INDEX "rig_project_tokens_status_idx" ON "rig_project_tokens"("status");

-- AddForeignKey
ALTER TABLE "rig_project_tokens" ADD CONSTRAINT "rig_project_tokens_rig_id_fkey" FOREIGN KEY ("rig_id") REFERENCES "gastown_rigs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rig_project_tokens" ADD CONSTRAINT "rig_project_tokens_integration_id_fkey" FOREIGN KEY ("integration_id") REFERENCES "platform_integrations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
