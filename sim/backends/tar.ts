import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'

/**
 * Just enough of a ustar writer to hand `docker import` a root filesystem: regular files and directories, no links,
 * no extended headers. Written here rather than borrowed from a transitive dependency of testcontainers, which
 * this project does not declare and could lose on any upgrade.
 */

export interface TarEntry {
  /** Path inside the archive, without a leading slash; directories end without a slash too. */
  path: string
  type: 'file' | 'dir'
  mode: number
  /** A file's bytes: given directly, or read from `source` when the archive is streamed. */
  content?: Buffer
  source?: string
  size?: number
}

const BLOCK = 512

export function tarStream (entries: TarEntry[]): Readable {
  return Readable.from(generate(entries), { objectMode: false })
}

async function * generate (entries: TarEntry[]): AsyncGenerator<Buffer> {
  for (const entry of entries) {
    const size = entry.type === 'dir' ? 0 : entry.content?.length ?? entry.size
    if (size == null) throw new Error(`tar: ${entry.path}: size unknown`)
    yield header(entry, size)
    if (entry.type === 'dir') continue
    let written = 0
    if (entry.content != null) {
      yield entry.content
      written = entry.content.length
    } else if (entry.source != null) {
      for await (const chunk of createReadStream(entry.source)) {
        written += (chunk as Buffer).length
        yield chunk as Buffer
      }
    }
    // A file that changed between listing and streaming would corrupt every entry after it.
    if (written !== size) throw new Error(`tar: ${entry.path} changed while it was archived (${size} bytes listed, ${written} read)`)
    const pad = (BLOCK - (size % BLOCK)) % BLOCK
    if (pad > 0) yield Buffer.alloc(pad)
  }
  yield Buffer.alloc(BLOCK * 2)
}

function header (entry: TarEntry, size: number): Buffer {
  const buf = Buffer.alloc(BLOCK)
  const { name, prefix } = splitPath(entry.type === 'dir' ? `${entry.path}/` : entry.path)
  buf.write(name, 0, 100, 'utf8')
  octal(buf, entry.mode & 0o7777, 100, 8)
  octal(buf, 0, 108, 8)
  octal(buf, 0, 116, 8)
  octal(buf, size, 124, 12)
  // A fixed mtime keeps the image identical for identical content.
  octal(buf, 0, 136, 12)
  buf.write('        ', 148, 8, 'ascii')
  buf.write(entry.type === 'dir' ? '5' : '0', 156, 1, 'ascii')
  buf.write('ustar\u000000', 257, 8, 'ascii')
  buf.write('root', 265, 32, 'ascii')
  buf.write('root', 297, 32, 'ascii')
  buf.write(prefix, 345, 155, 'utf8')
  let sum = 0
  for (const byte of buf) sum += byte
  buf.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii')
  return buf
}

function octal (buf: Buffer, value: number, offset: number, length: number): void {
  const text = value.toString(8)
  if (text.length > length - 1) throw new Error(`tar: ${value} does not fit in ${length - 1} octal digits`)
  buf.write(`${text.padStart(length - 1, '0')}\u0000`, offset, length, 'ascii')
}

/** ustar stores up to 100 bytes of name plus 155 of prefix, split at a slash. */
function splitPath (path: string): { name: string, prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' }
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i)
    const name = path.slice(i + 1)
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { name, prefix }
  }
  throw new Error(`tar: path too long for ustar: ${path}`)
}
