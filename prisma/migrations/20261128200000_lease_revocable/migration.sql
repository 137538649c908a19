-- AlterTable
ALTER TABLE "token_leases" ADD COLUMN     "revocable" BOOLEAN NOT NULL DEFAULT false;
