/**
 * Last-moment cleanup when the harness exits without unwinding (process.exit, an uncaught error): one 'exit'
 * listener for every child process and container the harness holds. 'exit' listeners run synchronously and no
 * promise settles any more, so a hook can only send signals or run a bounded synchronous command. A SIGKILLed
 * harness runs none of them; that is what parent-death signals and the docker reaper are for.
 */

const hooks = new Set<() => void>()
let installed = false

/** Runs `hook` if this process exits; returns the function that unregisters it. */
export function onExit (hook: () => void): () => void {
  if (!installed) {
    installed = true
    process.on('exit', () => {
      for (const run of [...hooks]) {
        // One failed cleanup must not keep the others from running.
        try { run() } catch { /* nothing more can be done at exit */ }
      }
    })
  }
  hooks.add(hook)
  return () => { hooks.delete(hook) }
}
