export async function embedCommand(_argv: string[]): Promise<void> { throw new Error('not yet'); }
