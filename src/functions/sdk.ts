/**
 * The helper module user functions import as `sluice/functions` (the worker serves it
 * as a virtual module, so a function file needs no installed package):
 *
 *   import { RetryError } from "sluice/functions";
 *   export default async function (event, ctx) {
 *     if (!(await ctx.fetch(url)).ok) throw new RetryError("CRM is down");
 *   }
 */

/** Thrown by a function to ask for the event to be tried again later, with backoff (Jitsu's RetryError). */
export class RetryError extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RetryError";
  }
}
