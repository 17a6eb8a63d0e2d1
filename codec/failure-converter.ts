/**
 * Loaded by path (`dataConverter.failureConverterPath`) on the client, the worker and inside the workflow bundle:
 * failure messages and stack traces travel as an encoded payload, so with the encrypting codec they are ciphertext in
 * the history too (handler errors are app code and may quote data). Readers decode them transparently; Temporal Web
 * shows them through the codec server.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
