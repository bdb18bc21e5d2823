// Problem responses (RFC 9457) as a typed Error, so callers can `catch` and switch on `code`.
import type { ErrorCode, FieldError, Problem } from './generated/types.gen.js';

/** A problem the server sent: `status`, the stable `code`, and the whole document. */
export class SkeinError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly problem: Problem;

  constructor(status: number, problem: Problem) {
    super(`${status} ${problem.code}: ${problem.detail ?? problem.title}`);
    this.name = 'SkeinError';
    this.status = status;
    this.code = problem.code;
    this.problem = problem;
  }

  /** The field errors of a `validation_failed` (422). */
  get fieldErrors(): FieldError[] {
    return this.problem.errors ?? [];
  }
}

/** Whether `value` looks like a problem document (an object with a string `code` and `title`). */
export function isProblem(value: unknown): value is Problem {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record.code === 'string' && typeof record.title === 'string';
}

/** The error for a non-2xx `response`: a SkeinError when its body is a problem. */
export async function errorFrom(response: Response): Promise<Error> {
  const text = await response.text().catch(() => '');
  try {
    const body: unknown = JSON.parse(text);
    if (isProblem(body)) return new SkeinError(response.status, body);
  } catch {
    // not JSON: fall through
  }
  return new Error(`${response.status} ${response.statusText}: ${text.slice(0, 200)}`);
}
