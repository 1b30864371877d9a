// v1 Secret: small pieces of sensitive data, such as the link credentials a cluster keeps (Strait
// reads `data` only; `stringData` is accepted as Kubernetes accepts it).
import { z } from 'zod';
import type { Resource } from '../types.js';
import { defineKind, objectSchema } from './define.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const SecretSchema = objectSchema({
  /** What the secret holds (`Opaque`, `strait.dev/link-credential`, …); Kubernetes' default is Opaque. */
  type: z.string().optional(),
  /** Base64-encoded values by key. */
  data: z.record(z.string(), z.string()).optional(),
  /** Plain values, merged into `data` by Kubernetes when written. */
  stringData: z.record(z.string(), z.string()).optional(),
  immutable: z.boolean().optional(),
});

export type Secret = Resource<never, never> & {
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
};

/** The value of `key` in a secret, decoded (from `data`, else `stringData`); undefined when absent. */
export function secretValue(secret: Secret, key: string): string | undefined {
  const encoded = secret.data?.[key];
  if (encoded !== undefined) return Buffer.from(encoded, 'base64').toString('utf8');
  return secret.stringData?.[key];
}

export const secretKind = defineKind({
  group: '',
  kind: 'Secret',
  plural: 'secrets',
  shortNames: [],
  namespaced: true,
  versions: ['v1'],
  nameRule: 'dns1123-subdomain',
  kubernetes: { openApiType: 'V1Secret', model: async () => (await import('kubernetes-models/v1/Secret')).Secret },
  schema: SecretSchema,
  check: (secret, report) => {
    for (const [key, value] of Object.entries(secret.data ?? {})) {
      if (!BASE64.test(value)) report(['data', key], 'must be base64-encoded (use stringData for plain text)');
    }
  },
});
