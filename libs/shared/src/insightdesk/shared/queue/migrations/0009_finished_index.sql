-- Queue schema, version 9: one index over finished jobs for retention and history, not two.
--
-- A completion is not a HOT update, so it adds an entry to every index whose predicate the
-- finished row meets. Version 8 kept two such indexes beside job_search_finished (console
-- search): job_purge, keyed by the instant a job may be deleted, for retention, and
-- job_completed, keyed by completed_on, for the history snapshot. One index keyed
-- (delete_after, completed_on) serves both: a queue's jobs share a few retention periods, so
-- both statements skip from one delete_after to the next through the index (a recursive probe
-- per distinct value) and read, for each, the range of completed_on they need: the jobs due
-- for deletion (completed_on before now less that period) or those finished in the last slot.
-- Cost stays proportional to the rows due plus the number of distinct retention periods.

DROP INDEX {schema}.job_purge;
DROP INDEX {schema}.job_completed;
DROP FUNCTION {schema}.purge_at(timestamptz, double precision);
CREATE INDEX job_finished ON {schema}.job (delete_after, completed_on) WHERE state > 'active';
