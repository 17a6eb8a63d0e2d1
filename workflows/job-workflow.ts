/** A generic async job: its executor runs as an activity with retries, a try count and dead-lettering. */
import { allHandlersFinished, condition, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { jobStateQuery } from '../domain/definitions';
import { STATUS } from '../domain/search-attributes';
import type { JobWorkflowInput, JobWorkflowState } from '../domain/types';
import { describeJob } from './details';
import { bookkeeping, StepRunner } from './step-runner';

export async function jobWorkflow(input: JobWorkflowInput): Promise<JobWorkflowState> {
  const { jobId } = input;
  const state: JobWorkflowState = { jobId, jobType: '', phase: 'running', status: 'running', steps: {} };
  const runner = new StepRunner({ subjectKind: 'job', subjectId: jobId, changed: () => refresh() });
  function refresh(): void {
    state.steps = { ...runner.steps } as JobWorkflowState['steps'];
    state.deadLetter = runner.deadLetter;
    state.phase = runner.deadLetter ? 'dead_lettered' : state.phase === 'dead_lettered' ? 'running' : state.phase;
    setCurrentDetails(describeJob(state));
  }
  setHandler(jobStateQuery, () => state);

  const plan = await bookkeeping.loadJobPlan({ jobId });
  state.jobType = plan.jobType;
  refresh();
  if (!plan.done) {
    const executed = await runner.run('execute', plan.retry.execute, { startToCloseTimeout: '1 hour', heartbeatTimeout: '1 minute' }, (a) =>
      a.executeJob({ jobId }),
    );
    if (executed.ok) {
      state.status = 'succeeded';
    } else {
      await bookkeeping.notifyDiscarded({ subjectKind: 'job', subjectId: jobId, deadLetterId: executed.deadLetter.deadLetterId });
      state.status = 'discarded';
    }
    upsertSearchAttributes([{ key: STATUS, value: state.status }]);
  }
  state.phase = 'done';
  refresh();
  await condition(allHandlersFinished);
  return state;
}
