/**
 * Renders templates/*.sh: every `{{NAME}}` becomes one quoted bash word and every `{{@NAME}}`
 * a list of quoted words (for arrays). A placeholder without a value, or a value without a
 * placeholder, is an error: a wrapper that silently lost a limit is worse than no job.
 */
import { sh, shWords } from './quote.js';

export type TemplateValue = string | number | readonly (string | number)[];

const PLACEHOLDER = /\{\{(@?)([A-Z][A-Z0-9_]*)\}\}/g;

/** Substitutes quoted values into a shell template; throws on any missing or unused variable. */
export function renderTemplate(template: string, vars: Record<string, TemplateValue>): string {
  const used = new Set<string>();
  const missing = new Set<string>();
  const out = template.replace(PLACEHOLDER, (_all, list: string, name: string) => {
    const v = vars[name];
    if (v === undefined) {
      missing.add(name);
      return '';
    }
    used.add(name);
    if (list === '@') {
      if (!Array.isArray(v)) throw new Error(`template variable ${name} must be a list`);
      return shWords(v);
    }
    if (Array.isArray(v)) throw new Error(`template variable ${name} is a list; use {{@${name}}}`);
    return sh(v as string | number);
  });
  if (missing.size > 0) throw new Error(`template variables missing: ${[...missing].join(', ')}`);
  const unused = Object.keys(vars).filter((k) => !used.has(k));
  if (unused.length > 0) throw new Error(`template variables not in the template: ${unused.join(', ')}`);
  return out;
}
