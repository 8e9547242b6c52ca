/** The function of the `/api/funcs/{conId}` scenario: marks the event and passes it on. */
export default function passthrough(event: { properties?: Record<string, unknown> }) {
  event.properties = { ...event.properties, bench: true };
}
