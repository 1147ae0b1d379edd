// What the product tells people, independent of where it is said: SNS (e-mail, SMS), Telegram, a chat webhook.
// Each channel renders the same notice its own way; a login link travels as a button where the channel has them.

/** The events a person hears about. The json webhook format carries this name as it is. */
export type NoticeEvent = 'login_needed' | 'ready' | 'not_ready';

export interface NoticeButton {
  /** What the button says, e.g. "Log in to Kite" or "Log in to Kite (alice)". */
  label: string;
  /** Where it leads: a signed login link. A credential of sorts: never logged. */
  url: string;
}

export interface Notice {
  event: NoticeEvent;
  /** One line, plain ASCII-safe, under 100 characters (SNS e-mail subjects). */
  subject: string;
  /** Plain text, complete on its own (an e-mail or SMS shows only this and the subject): links are written out. */
  body: string;
  /** Links to show as buttons where the channel has them (Telegram inline keyboard, Slack/Discord link). */
  buttons?: NoticeButton[];
  /** The accounts the notice is about, by name. */
  accounts?: string[];
}

/**
 * Sends a notice on every configured channel. Resolves when at least one channel delivered it (or none is
 * configured); rejects only when every configured channel failed, so a caller can give back what it claimed.
 */
export type Notify = (notice: Notice, options?: NotifyOptions) => Promise<void>;

export interface NotifyOptions {
  /** Epoch ms (the invocation's end, less a margin): no channel waits out a 429 or retries past it. */
  deadline?: number | undefined;
}
