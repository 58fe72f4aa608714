import { escapeAttr } from './escape.ts'

/**
 * A tagged template that escapes every interpolated value unless it is already markup. Escaping by default is
 * what keeps peer ids, error messages and scenario names from ever being read as HTML.
 */
export class Markup {
  readonly html: string
  constructor (html: string) {
    this.html = html
  }

  toString (): string {
    return this.html
  }
}

type Interpolation = Markup | string | number | boolean | null | undefined | readonly Interpolation[]

function render (value: Interpolation): string {
  if (value instanceof Markup) return value.html
  if (Array.isArray(value)) return value.map(render).join('')
  if (value == null || value === false) return ''
  // Attribute-grade escaping is safe in text too, so one rule serves both contexts.
  return escapeAttr(String(value))
}

export function html (strings: TemplateStringsArray, ...values: Interpolation[]): Markup {
  return new Markup(strings.reduce((out, s, i) => out + s + (i < values.length ? render(values[i] as Interpolation) : ''), ''))
}

/** Only for constant markup written in this code base (the stylesheet); never for data. */
export const trusted = (markup: string): Markup => new Markup(markup)

/** Numbers for SVG coordinates: short and never in exponent notation. */
export const n = (value: number): string => String(Math.round(value * 10) / 10)
