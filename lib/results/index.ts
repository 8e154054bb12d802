/** Public API of the results layer: the results table, aggregates over seeds, paired comparisons. */
export { aq } from './arquero';
export type { Arquero, Table } from './arquero';
export type { Setting, SettingField } from './settings';
export { SETTING_FIELDS, settingOf, settingKey, settingLabel, varyingFields, groupBySetting, metricNames, matchesPartial, compareSettings } from './settings';
export type { Cell, Row, WrittenTable } from './table';
export { resultsTable, resultRows, tableFromRows, finiteOrNull, putNumbers, protocolSummary, windowCount, formatNumber, tableMarkdown, tableHtml, escapeHtml, tableJson, writeTable } from './table';
export type { Summary, SettingAggregate } from './aggregate';
export { summarize, aggregateSettings, aggregatesTable } from './aggregate';
export type { Baseline, Comparison, PairedOptions, PairedResult, PairedSummary } from './paired';
export { pairedComparisons, comparisonsTable } from './paired';
export type { Interval, BootstrapOptions } from './stats';
export { mean, std, logGamma, incompleteBeta, tCdf, tQuantile, tInterval, quantileSorted, bootstrapMeanColumns } from './stats';
