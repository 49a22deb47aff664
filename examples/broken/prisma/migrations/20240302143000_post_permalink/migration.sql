-- AlterTable
ALTER TABLE "Post" ADD COLUMN     "permalink" TEXT;

-- CreateIndex
CREATE UNIQUE INDEX "Post_permalink_key" ON "Post"("permalink");
