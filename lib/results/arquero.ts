/**
 * arquero 7 for this CommonJS project. arquero is an ES module; Node >= 20.19 loads it with
 * `require`, and its types come through a (never called) dynamic import, which TypeScript 5.0
 * (tslab) accepts in a CommonJS file where a static `import` of an ES module is an error.
 */
const importArquero = () => import('arquero');

/** The arquero module's API (`aq.from`, `aq.fromCSV`, `aq.toCSV`, ...). */
export type Arquero = Awaited<ReturnType<typeof importArquero>>;

/** An arquero column table. */
export type Table = ReturnType<Arquero['from']>;

// eslint-disable-next-line @typescript-eslint/no-var-requires
export const aq = require('arquero') as Arquero;
