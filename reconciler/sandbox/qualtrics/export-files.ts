/**
 * Renders a response export file. JSON is `{"responses":[record…]}`; NDJSON one record per line; CSV/TSV
 * follow the export API's three header rows (column names, labels/question text, then
 * `{"ImportId":…}` per column); XML one `<Response>` per record. The file is zipped unless
 * `compress: false`.
 */
import { zipSync } from 'fflate';
import { DateTime } from 'luxon';
import type { ExportFormat, ExportRequest, Survey, SurveyResponse } from './state.ts';
import { METADATA_COLUMNS, buildResponseRecord, embeddedFieldNames, type RecordOptions, type RecordValue, type ResponseRecord } from './survey-views.ts';

interface Column {
  header: string;
  label: string;
  importId: string;
  /** Date columns carry the export time zone in their ImportId cell and are rendered in it. */
  isDate: boolean;
  /** `values`/`labels` key the cell reads. */
  key: string;
  /** For broken-out multi-select columns: the choice this column stands for. */
  choice?: { recode: number; text: string };
}

const DATE_KEYS = new Set(['startDate', 'endDate', 'recordedDate', 'lastModifiedDate']);

const EXTENSIONS: Record<ExportFormat, string> = { json: 'json', ndjson: 'ndjson', csv: 'csv', tsv: 'tsv', xml: 'xml' };

const CONTENT_TYPES: Record<ExportFormat, string> = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
  tsv: 'text/tab-separated-values; charset=utf-8',
  xml: 'application/xml',
};

export function recordOptionsOf(req: ExportRequest): RecordOptions {
  return {
    questionIds: req.questionIds,
    embeddedDataIds: req.embeddedDataIds,
    surveyMetadataIds: req.surveyMetadataIds,
    seenUnansweredRecode: req.seenUnansweredRecode,
    multiselectSeenUnansweredRecode: req.multiselectSeenUnansweredRecode,
    includeLastModified: req.sortByLastModifiedDate,
  };
}

function columnsFor(survey: Survey, responses: readonly SurveyResponse[], req: ExportRequest): Column[] {
  const cols: Column[] = [];
  const metaIds = req.surveyMetadataIds ?? METADATA_COLUMNS.map((m) => m.id);
  for (const m of METADATA_COLUMNS) {
    if (metaIds.includes(m.id)) cols.push({ header: m.column, label: m.label, importId: m.id, isDate: DATE_KEYS.has(m.id), key: m.id });
  }
  if (req.sortByLastModifiedDate) {
    cols.push({ header: 'LastModifiedDate', label: 'Last Modified Date', importId: 'lastModifiedDate', isDate: true, key: 'lastModifiedDate' });
  }
  const wanted = req.questionIds ? new Set(req.questionIds) : undefined;
  for (const q of survey.questions) {
    if (wanted && !wanted.has(q.id)) continue;
    switch (q.type) {
      case 'single':
        cols.push({ header: q.exportTag, label: q.text, importId: q.id, isDate: false, key: q.id });
        break;
      case 'multi':
        if (req.breakoutSets) {
          // ⚠ Broken-out cells hold the choice's recode (its text with useLabels) when selected, else empty.
          for (const c of q.choices) {
            cols.push({
              header: `${q.exportTag}_${c.id}`,
              label: `${q.text} - ${c.text}`,
              importId: `${q.id}_${c.id}`,
              isDate: false,
              key: q.id,
              choice: { recode: Number(c.recode), text: c.text },
            });
          }
        } else {
          cols.push({ header: q.exportTag, label: q.text, importId: q.id, isDate: false, key: q.id });
        }
        break;
      case 'text':
        cols.push({ header: q.exportTag, label: q.text, importId: `${q.id}_TEXT`, isDate: false, key: `${q.id}_TEXT` });
        break;
      case 'nps':
        cols.push({ header: q.exportTag, label: q.text, importId: q.id, isDate: false, key: q.id });
        cols.push({
          header: `${q.exportTag}_NPS_GROUP`,
          label: `${q.text} - Group`,
          importId: `${q.id}_NPS_GROUP`,
          isDate: false,
          key: `${q.id}_NPS_GROUP`,
        });
        break;
    }
    for (const c of q.choices) {
      const key = `${q.id}_${c.id}_TEXT`;
      if (responses.some((r) => r.choiceTexts[key] !== undefined)) {
        cols.push({ header: `${q.exportTag}_${c.id}_TEXT`, label: `${q.text} - ${c.text} - Text`, importId: key, isDate: false, key });
      }
    }
  }
  const embedded = req.embeddedDataIds ?? embeddedFieldNames(survey, responses);
  for (const name of embedded) cols.push({ header: name, label: name, importId: name, isDate: false, key: name });
  return cols;
}

function formatDate(iso: string, timeZone: string): string {
  return DateTime.fromISO(iso, { zone: 'utc' }).setZone(timeZone).toFormat('yyyy-MM-dd HH:mm:ss');
}

function cellText(col: Column, rec: ResponseRecord, req: ExportRequest): string {
  const value: RecordValue | undefined = rec.values[col.key];
  if (value === undefined || value === null) return '';
  if (col.choice) {
    const picked = Array.isArray(value) && value.includes(col.choice.recode);
    if (!picked) return '';
    return req.useLabels ? col.choice.text : String(col.choice.recode);
  }
  if (req.useLabels) {
    const label = rec.labels[col.key];
    if (label !== undefined) return Array.isArray(label) ? label.join(',') : label;
  }
  if (col.isDate && typeof value === 'string') return formatDate(value, req.timeZone);
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'number') {
    const s = String(value);
    return req.formatDecimalAsComma ? s.replace('.', ',') : s;
  }
  return req.newlineReplacement !== null ? value.replace(/\r\n|\r|\n/g, req.newlineReplacement) : value;
}

function csvEscape(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function tsvEscape(s: string): string {
  return s.replace(/[\t\r\n]+/g, ' ');
}

function renderDelimited(survey: Survey, responses: readonly SurveyResponse[], req: ExportRequest, sep: ',' | '\t'): string {
  const cols = columnsFor(survey, responses, req);
  const esc = sep === ',' ? csvEscape : tsvEscape;
  const opts = recordOptionsOf(req);
  const lines = [
    cols.map((c) => esc(c.header)).join(sep),
    cols.map((c) => esc(c.label)).join(sep),
    cols
      .map((c) => esc(JSON.stringify(c.isDate ? { ImportId: c.importId, timeZone: req.timeZone } : { ImportId: c.importId })))
      .join(sep),
  ];
  for (const r of responses) {
    const rec = buildResponseRecord(survey, r, opts);
    lines.push(cols.map((c) => esc(cellText(c, rec, req))).join(sep));
  }
  return lines.join('\r\n') + '\r\n';
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function xmlName(key: string): string {
  const cleaned = key.replace(/[^A-Za-z0-9_.-]/g, '_');
  return /^[A-Za-z_]/.test(cleaned) ? cleaned : `_${cleaned}`;
}

function renderXml(records: readonly ResponseRecord[]): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>', '<Responses>'];
  for (const rec of records) {
    out.push('<Response>');
    for (const [k, v] of Object.entries(rec.values)) {
      if (v === null) continue;
      const name = xmlName(k);
      out.push(`<${name}>${xmlEscape(Array.isArray(v) ? v.join(',') : String(v))}</${name}>`);
    }
    out.push('</Response>');
  }
  out.push('</Responses>');
  return out.join('\n') + '\n';
}

export interface RenderedExport {
  fileName: string;
  contentType: string;
  bytes: Buffer;
}

function safeFileStem(name: string): string {
  const stem = name.replace(/[\\/:*?"<>|\u0000-\u001f]/g, '_').trim();
  return stem === '' ? 'export' : stem;
}

/** Renders the file and, unless `compress` is false, wraps it in a ZIP holding `<Survey Name>.<ext>`. */
export function renderExport(survey: Survey, responses: readonly SurveyResponse[], req: ExportRequest, now: Date): RenderedExport {
  const opts = recordOptionsOf(req);
  let text: string;
  switch (req.format) {
    case 'json':
      text = JSON.stringify({ responses: responses.map((r) => buildResponseRecord(survey, r, opts)) });
      break;
    case 'ndjson':
      text = responses.map((r) => JSON.stringify(buildResponseRecord(survey, r, opts)) + '\n').join('');
      break;
    case 'csv':
      text = renderDelimited(survey, responses, req, ',');
      break;
    case 'tsv':
      text = renderDelimited(survey, responses, req, '\t');
      break;
    case 'xml':
      text = renderXml(responses.map((r) => buildResponseRecord(survey, r, opts)));
      break;
  }
  // ⚠ The inner file name is not documented; `<Survey Name>.<ext>` is what clients commonly report.
  const inner = `${safeFileStem(survey.name)}.${EXTENSIONS[req.format]}`;
  const content = Buffer.from(text, 'utf8');
  if (!req.compress) return { fileName: inner, contentType: CONTENT_TYPES[req.format], bytes: content };
  const zipped = zipSync({ [inner]: new Uint8Array(content) }, { level: 6, mtime: now });
  return { fileName: `${safeFileStem(survey.name)}.zip`, contentType: 'application/zip', bytes: Buffer.from(zipped) };
}
