/** What begins every line this package writes to stderr and every message it throws: the reader sees whose it is. */
export const PREFIX = 'pino-bitrix24-workflow: '
