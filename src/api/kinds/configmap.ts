// v1 ConfigMap: configuration a pod reads as files or env (the Linkerd survey's error injector keeps
// its nginx.conf in one). Validated as Kubernetes does: keys are file-name-like, data and
// binaryData do not share a key.
import { z } from 'zod';
import type { Resource } from '../types.js';
import { defineKind, objectSchema } from './define.js';

const KEY = /^[-._a-zA-Z0-9]+$/;

const ConfigMapSchema = objectSchema({
  data: z.record(z.string(), z.string()).optional(),
  /** Base64-encoded binary values by key. */
  binaryData: z.record(z.string(), z.string()).optional(),
  immutable: z.boolean().optional(),
});

export type ConfigMap = Resource<never, never> & { data?: Record<string, string>; binaryData?: Record<string, string> };

export const configMapKind = defineKind({
  group: '',
  kind: 'ConfigMap',
  plural: 'configmaps',
  shortNames: ['cm'],
  namespaced: true,
  versions: ['v1'],
  nameRule: 'dns1123-subdomain',
  kubernetes: { openApiType: 'V1ConfigMap', model: async () => (await import('kubernetes-models/v1/ConfigMap')).ConfigMap },
  schema: ConfigMapSchema,
  check: (cm, report) => {
    for (const field of ['data', 'binaryData'] as const) {
      for (const key of Object.keys(cm[field] ?? {})) {
        if (!KEY.test(key) || key === '.' || key === '..' || key.length > 253) report([field, key], "must be a key of letters, digits, '-', '_' or '.' (a file name), at most 253 characters");
        if (field === 'binaryData' && cm.data?.[key] !== undefined) report([field, key], 'is in data too; a key may be in only one of them');
      }
    }
  },
});
