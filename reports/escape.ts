/**
 * Escaping shared by the JUnit XML and the HTML report. Both end up in XML-ish parsers (CI servers, browsers),
 * where a stray control character or lone surrogate from a libp2p error message makes the whole file unreadable.
 */

// XML 1.0 forbids these code points even as character references, so they cannot be escaped — only replaced.
// eslint-disable-next-line no-control-regex
const ILLEGAL_XML_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g

const visibleCodePoint = (ch: string): string => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`

/** Makes a string storable in XML 1.0: illegal characters become a visible `\uXXXX` so the evidence is kept. */
function legal (value: string): string {
  return value.toWellFormed().replace(ILLEGAL_XML_CHARS, visibleCodePoint)
}

/** For element content: `<`, `>` and `&` are escaped, newlines are kept so failure text stays readable. */
export function escapeText (value: string): string {
  return legal(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/**
 * For attribute values (and anywhere the context is unknown): quotes are escaped, and tab/newline/CR become
 * character references because attribute-value normalisation would otherwise turn them into spaces.
 */
export function escapeAttr (value: string): string {
  return escapeText(value)
    .replace(/"/g, '&quot;').replace(/'/g, '&#39;')
    .replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;')
}
