/**
 * The main suite's dead-letter file, run again against the cluster: try counts, a handler dead-lettered then
 * requeued after the fix, discards, jobs, a bulk requeue of 50 and the consistency check, found through SQL visibility.
 */
import '../dead-letters.test';
