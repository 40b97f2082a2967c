/**
 * This package's version, read from its package.json when loaded. Importing
 * the JSON instead would make the compiler copy package.json into dist/
 * (resolveJsonModule with rootDir '.'), and npm would ship that copy, scripts
 * and devDependencies included. The package finds itself by name through its
 * own `exports`, from the sources and from dist/ alike.
 */
export const version: string = (require('pino-bitrix24-workflow/package.json') as { version: string }).version
