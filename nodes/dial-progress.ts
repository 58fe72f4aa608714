import type { DialOptions } from '@libp2p/interface'

type DialProgressEvent = Parameters<NonNullable<DialOptions['onProgress']>>[0]

/**
 * Where a dial was when it ended, from js-libp2p's own progress events. A dial that times out says only
 * "TimeoutError", and the same ten seconds can mean a peer that never answered the handshake, a dial waiting
 * behind another dial to the same peer, or no address known at all (libp2p then asks the DHT for one, and a peer
 * that left is found nowhere). Each calls for a different reading, so a timeout's detail names the step it stopped in.
 */
export interface DialProgress {
  onProgress: (event: DialProgressEvent) => void
  /** The step the dial was in, in words; null before libp2p reported any. */
  step: () => string | null
}

const STEPS: Readonly<Record<string, string>> = {
  'dial-queue:add-to-dial-queue': 'waiting in the dial queue',
  'dial-queue:already-in-dial-queue': 'joined a dial to the same peer already in progress',
  'dial-queue:start-dial': 'looking up the peer\'s addresses',
  'transport-manager:selected-transport': 'opening a transport connection',
  'upgrader:encrypt-outbound-connection': 'in the encryption handshake',
  'upgrader:multiplex-outbound-connection': 'negotiating the stream muxer',
  'connection:opened': 'connected'
}

export function dialProgress (hasKnownAddress: boolean): DialProgress {
  let step: string | null = null
  return {
    onProgress: event => {
      if (event.type === 'dial-queue:calculated-addresses') {
        const addresses = event.detail.map(a => a.multiaddr.toString())
        step = addresses.length === 0 ? 'no address to dial' : `dialling ${addresses.join(', ')}`
        return
      }
      if (event.type === 'dial-queue:start-dial' && !hasKnownAddress) {
        step = 'no address known: looking the peer up in the DHT'
        return
      }
      step = STEPS[event.type] ?? step
    },
    step: () => step
  }
}
