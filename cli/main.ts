/**
 * The `batchkeeper` command: `batchkeeper <group> <command> [args] [--json]`. Exit codes: 0 ok; 1 unexpected error
 * (or a consistency check / bulk action that found problems); 2 usage error, bad input, unknown id, or an action
 * that does not apply.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BatchkeeperError, ValidationError } from '../client/errors';
import { UsageError, type CommandGroup, type CommandSpec, type Values } from './command';
import { batchesGroup } from './commands/batches';
import { deadLettersGroup } from './commands/dead-letters';
import { failedGroup } from './commands/failed';
import { jobsGroup } from './commands/jobs';
import { schedulesGroup } from './commands/schedules';
import { webhooksGroup } from './commands/webhooks';
import { cliSettings, ConfigError, createCliContext, type CliContext } from './context';
import { table, toJson } from './format';

export const GROUPS: CommandGroup[] = [batchesGroup, jobsGroup, deadLettersGroup, failedGroup, schedulesGroup, webhooksGroup];

export interface CliIo {
  stdout(text: string): void;
  /** For output streamed as it is produced (an exported results file on stdout). */
  stream?: NodeJS.WritableStream;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  stream: process.stdout,
  stderr: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  env: process.env,
};

const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h';

/** The version in package.json: beside cli/ in a checkout, above dist/ in the installed package. */
export function packageVersion(): string {
  for (const dir of [path.join(__dirname, '..'), path.join(__dirname, '..', '..')]) {
    try {
      const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'batchkeeper' && manifest.version) return manifest.version;
    } catch {
      // not here: look one folder up
    }
  }
  return 'unknown';
}

export function topHelp(): string {
  return [
    'batchkeeper: operate LLM provider batches and async jobs (Temporal + PostgreSQL)',
    '',
    'Usage: batchkeeper <group> <command> [arguments] [options] [--json]',
    '',
    'Groups:',
    table(['', ''], GROUPS.map((group) => [`  ${group.name}`, group.summary])).split('\n').slice(1).join('\n'),
    '',
    'Every command takes --json (machine-readable output on stdout) and --help.',
    'Run "batchkeeper <group> --help" for the commands of a group.',
    '',
    'Environment: DATABASE_URL; TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_* or TEMPORAL_PROFILE;',
    '  BATCHKEEPER_TASK_QUEUE (default batchkeeper); BATCHKEEPER_OPERATOR (recorded with dead-letter decisions).',
    'Exit codes: 0 ok; 1 unexpected error, failed consistency check or partly failed bulk action;',
    '  2 usage error, invalid input (a malformed id too), unknown id, or an action that does not apply;',
    '  3 PostgreSQL or Temporal could not be reached (the message says which, and where); 4 a wait timed out.',
    'batchkeeper --version prints the version.',
  ].join('\n');
}

export function groupHelp(group: CommandGroup): string {
  if (group.single) return commandHelp(group, group.commands[0]);
  return [
    `Usage: batchkeeper ${group.name} <command> [arguments] [options] [--json]`,
    '',
    `${group.summary}`,
    '',
    'Commands:',
    table(['', ''], group.commands.map((command) => [`  ${usageLine(command)}`, command.summary])).split('\n').slice(1).join('\n'),
    '',
    `Run "batchkeeper ${group.name} <command> --help" for a command's options.`,
  ].join('\n');
}

function usageLine(command: CommandSpec): string {
  return [command.name, ...(command.args ?? []).map((arg) => `<${arg}>`)].join(' ');
}

export function commandHelp(group: CommandGroup, command: CommandSpec): string {
  const prefix = group.single ? `batchkeeper ${group.name}` : `batchkeeper ${group.name} ${command.name}`;
  const args = (command.args ?? []).map((arg) => ` <${arg}>`).join('');
  const options = Object.entries(command.options ?? {}).map(([name, spec]) => [
    `  --${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`, spec.description,
  ]);
  options.push(['  --json', 'machine-readable output on stdout'], ['  -h, --help', 'this help']);
  return [
    `Usage: ${prefix}${args} [options]`,
    '',
    command.summary,
    '',
    'Options:',
    table(['', ''], options).split('\n').slice(1).join('\n'),
    ...(command.notes ? ['', command.notes] : []),
  ].join('\n');
}

interface Invocation {
  group: CommandGroup;
  command: CommandSpec;
  positionals: string[];
  values: Values;
}

/** Resolves argv to a command, or returns help text to print. Throws UsageError for anything malformed. */
function resolve(argv: string[]): Invocation | { help: string } {
  const args = argv.filter((arg, index) => !(arg === '--json' && index === 0));
  const [groupName, ...rest] = args;
  if (groupName === undefined) throw new UsageError('missing command', topHelp());
  if (isHelp(groupName)) return { help: topHelp() };
  if (groupName === '--version' || groupName === '-V') return { help: `batchkeeper ${packageVersion()}` };
  if (groupName === 'help') {
    const group = GROUPS.find((candidate) => candidate.name === rest[0]);
    return { help: group ? groupHelp(group) : topHelp() };
  }
  const group = GROUPS.find((candidate) => candidate.name === groupName);
  if (!group) throw new UsageError(`unknown command "${groupName}"`, topHelp());

  let command: CommandSpec;
  let commandArgs: string[];
  if (group.single) {
    [command, commandArgs] = [group.commands[0], rest];
  } else {
    const [name, ...more] = rest;
    if (isHelp(name)) return { help: groupHelp(group) };
    if (name === undefined) throw new UsageError(`missing command after "${group.name}"`, groupHelp(group));
    const found = group.commands.find((candidate) => candidate.name === name);
    if (!found) throw new UsageError(`unknown command "${group.name} ${name}"`, groupHelp(group));
    [command, commandArgs] = [found, more];
  }

  const options: NonNullable<Parameters<typeof parseArgs>[0]>['options'] = {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, spec] of Object.entries(command.options ?? {})) options[name] = { type: spec.type };
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: commandArgs, options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (error) {
    throw new UsageError(parseErrorMessage(error as Error), commandHelp(group, command));
  }
  if (parsed.values.help) return { help: commandHelp(group, command) };
  const expected = command.args ?? [];
  if (parsed.positionals.length < expected.length) {
    throw new UsageError(`missing <${expected[parsed.positionals.length]}>`, commandHelp(group, command));
  }
  if (parsed.positionals.length > expected.length) {
    throw new UsageError(`unexpected argument "${parsed.positionals[expected.length]}"`, commandHelp(group, command));
  }
  return { group, command, positionals: parsed.positionals, values: parsed.values };
}

function parseErrorMessage(error: Error & { code?: string }): string {
  const option = /'(-[^' ]+)/.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${option ?? error.message}`;
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return /argument missing/.test(error.message) ? `option ${option} needs a value` : `option ${option} takes no value`;
  }
  return error.message;
}

/** Runs one CLI invocation; resolves to the exit code. Never throws. */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  const json = argv.includes('--json');
  let invocation: Invocation | { help: string };
  try {
    invocation = resolve(argv);
  } catch (error) {
    return report(error, json, io);
  }
  if ('help' in invocation) {
    io.stdout(invocation.help);
    return 0;
  }
  const ctx = createCliContext(io.env, { stream: io.stream ?? process.stdout, progress: (line) => io.stderr(line) });
  try {
    const output = await invocation.command.run(ctx, invocation.positionals, invocation.values);
    if (!output.streamed) io.stdout(json ? toJson(output.json) : output.human());
    return output.exitCode ?? 0;
  } catch (error) {
    return report(ctx.explain(error), json, io, ctx);
  } finally {
    await ctx.close();
  }
}

function report(error: unknown, json: boolean, io: CliIo, ctx?: CliContext): number {
  const redact = (text: string) => (ctx ? ctx.redact(text) : text);
  const expected = error instanceof BatchkeeperError || error instanceof UsageError || error instanceof ConfigError;
  // An unexpected error's cause carries the reason (a Temporal ServiceError says only "Failed to count workflows").
  const cause = !expected && error instanceof Error && error.cause instanceof Error && !error.message.includes(error.cause.message)
    ? `: ${error.cause.message}` : '';
  const message = redact(error instanceof Error ? `${error.message}${cause}` : String(error));
  const code = expected ? (error as { code: string }).code : 'internal';
  const body: { code: string; message: string; field?: string } = { code, message };
  if (error instanceof ValidationError) body.field = error.field;
  if (json) io.stdout(toJson({ error: body }));
  io.stderr(`error: ${message}`);
  if (error instanceof UsageError && error.help && !json) io.stderr(`\n${error.help}`);
  if (!expected && cliSettings(io.env)?.debug && error instanceof Error && error.stack) io.stderr(redact(error.stack));
  return expected ? EXIT_CODES[code] ?? 2 : 1;
}

/** Exit codes of expected failures other than 2 (usage, bad input, unknown id, not applicable). */
const EXIT_CODES: Record<string, number> = { unavailable: 3, timeout: 4 };
