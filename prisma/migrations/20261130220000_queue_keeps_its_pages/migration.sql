-- The queue's size swings from empty to a backlog and back. Vacuum gave the empty pages at its
-- end back to the operating system, taking an ACCESS EXCLUSIVE lock on the queue to do so (every
-- claim and insert waits), and the smaller file then made the planner pick sequential scans over
-- the queue for the prepared statements it planned next: in the throughput bench a result write
-- went from about 1 ms to 5 ms, scanning the whole backlog instead of its rows by ctid
-- (bench/README.md, "Group commit"). The pages stay, to be filled again by the next backlog.
ALTER TABLE "webhook_queue" SET (vacuum_truncate = false);
