// Errors caused by what the user gave (a file, a flag, a name): every command prints their message
// as it is, without a stack, and exits 1.
export class UserError extends Error {
  override name = 'UserError';
}
