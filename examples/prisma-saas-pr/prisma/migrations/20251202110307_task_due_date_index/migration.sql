-- CreateIndex
CREATE INDEX "Task_dueDate_idx" ON "public"."Task"("dueDate");
