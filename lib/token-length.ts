/**
 * Longest event token taken, in characters, by the transport (lines with a
 * longer one are dropped as `tokenTooLong`) and by the context entry (which
 * refuses one at once): a token the context took but the transport dropped
 * would lose every line of its activity. Bitrix24's tokens are well under 200;
 * anything longer is not one. The cap matters beyond waste: V8 gives every
 * string over 16,383 characters of one length the same hash, so long distinct
 * tokens as Map keys turn every lookup into a scan and block the worker.
 * Kept apart so that the light context entry loads nothing of the transport.
 */
export const MAX_TOKEN_LENGTH = 512
