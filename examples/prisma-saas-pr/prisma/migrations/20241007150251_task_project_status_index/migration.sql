-- Hand-written: built without blocking writes on "Task". Must stay the only statement in this file.
CREATE INDEX CONCURRENTLY "Task_projectId_status_idx" ON "Task"("projectId", "status");
