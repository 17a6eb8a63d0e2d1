/**
 * Which files each provider holds: uploaded input files and the result files of finished batches (OpenAI-family
 * output and error files, Gemini responses files), less those deleted through the DELETE routes. xAI serves
 * results as pages, not files; Anthropic has no files.
 */
import { geminiResponsesFiles } from './gemini-format';
import { resultFileId, resultFiles } from './openai-format';
import type { DeletedFile, FakeState } from './state';

export interface HeldFile {
  provider: string;
  id: string;
  kind: 'input' | 'output' | 'error' | 'responses';
  /** `expires_after` sent with the upload (input files) or `output_expires_after` of the batch (result files). */
  expiresAfter: { anchor: string; seconds: number } | null;
}

export interface FileLedger {
  /** Files still at the provider. */
  left: HeldFile[];
  deleted: DeletedFile[];
}

export function fileLedger(state: FakeState): FileLedger {
  const left: HeldFile[] = state.liveInputFiles().map((file) => ({ provider: file.provider, id: file.id, kind: 'input', expiresAfter: file.expiresAfter }));
  for (const info of state.createdBatches()) {
    const batch = state.getBatch(info.id)!;
    if (batch.provider === 'anthropic' || batch.provider === 'xai') continue;
    const held = batch.provider === 'gemini'
      ? geminiResponsesFiles(state, batch).map((id) => ({ id, kind: 'responses' as const }))
      : [...resultFiles(state, batch, state.snapshot(batch))].map((kind) => ({ id: resultFileId(batch, kind), kind }));
    for (const file of held) {
      if (!state.isDeleted(file.id)) left.push({ provider: batch.provider, ...file, expiresAfter: batch.outputExpiresAfter });
    }
  }
  return { left, deleted: state.deletedFiles() };
}
