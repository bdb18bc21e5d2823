// An incremental parser of the text/event-stream format (WHATWG HTML "event stream
// interpretation"), fed decoded text as it arrives.

/** One dispatched frame. */
export interface SseFrame {
  /** `event:`; `message` when absent. */
  event: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** This frame's `id:`, if it had one. */
  id?: string;
}

export class SseParser {
  private buffer = '';
  private event: string | undefined;
  private data: string[] | undefined;
  private id: string | undefined;
  /** The reconnection delay the server asked for (`retry:`), in milliseconds. */
  retryMs: number | undefined;
  /** Comment lines seen (keep-alives). */
  comments = 0;

  /** Appends `text` and returns the frames it completes. */
  feed(text: string): SseFrame[] {
    this.buffer += text;
    const frames: SseFrame[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A trailing \r may be the first half of \r\n: wait for more.
      if (!match || (match[0] === '\r' && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const frame = this.line(line);
      if (frame) frames.push(frame);
    }
    return frames;
  }

  /** Forgets a half-received frame (its connection is gone); `retry:` is kept. */
  discardPartial(): void {
    this.buffer = '';
    this.event = this.data = this.id = undefined;
  }

  private line(line: string): SseFrame | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) {
      this.comments += 1;
      return undefined;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        (this.data ??= []).push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
    return undefined;
  }

  private dispatch(): SseFrame | undefined {
    const { event, data, id } = this;
    this.event = this.data = this.id = undefined;
    if (data === undefined) return undefined;
    return { event: event ?? 'message', data: data.join('\n'), ...(id === undefined ? {} : { id }) };
  }
}
