// Name rules, as Kubernetes checks them. Each check returns the reason a value is invalid, or
// undefined when it is valid, so callers can put the reason in their own message.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** RFC 1123 label: Namespace names, container and port names. */
export function dns1123LabelError(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (!DNS1123_LABEL.test(value)) {
    return "must be a lowercase RFC 1123 label: lower case letters, digits or '-', starting and ending with a letter or digit (e.g. 'my-name' or '123-abc')";
  }
  return undefined;
}

/** RFC 1123 subdomain: the names of most kinds (Deployment, Pod, ServiceAccount, custom resources). */
export function dns1123SubdomainError(value: string): string | undefined {
  if (value.length > 253) return 'must be no more than 253 characters';
  if (!DNS1123_SUBDOMAIN.test(value)) {
    return "must be a lowercase RFC 1123 subdomain: lower case letters, digits, '-' or '.', starting and ending with a letter or digit (e.g. 'example.com')";
  }
  return undefined;
}

/** RFC 1035 label: Service names, which must also start with a letter. */
export function dns1035LabelError(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (!DNS1035_LABEL.test(value)) {
    return "must be an RFC 1035 label: lower case letters, digits or '-', starting with a letter and ending with a letter or digit (e.g. 'my-name' or 'abc-123')";
  }
  return undefined;
}

export const isDns1123Label = (value: string): boolean => dns1123LabelError(value) === undefined;
export const isDns1123Subdomain = (value: string): boolean => dns1123SubdomainError(value) === undefined;
export const isDns1035Label = (value: string): boolean => dns1035LabelError(value) === undefined;

/** A label or annotation key: an optional DNS subdomain prefix and '/', then a name of up to 63 characters. */
export function qualifiedNameError(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    const prefixError = prefix === '' ? 'must not be empty' : dns1123SubdomainError(prefix);
    if (prefixError) return `prefix part ${prefixError}`;
  }
  if (name === '') return 'name part must not be empty';
  if (name.length > 63) return 'name part must be no more than 63 characters';
  if (!QUALIFIED_NAME.test(name)) {
    return "name part must consist of letters, digits, '-', '_' or '.', and must start and end with a letter or digit";
  }
  return undefined;
}

/** A label value: empty, or up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit. */
export function labelValueError(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (!LABEL_VALUE.test(value)) {
    return "must be empty or consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
  }
  return undefined;
}

/** A named port (`containerPort` name, `targetPort` by name): IANA service name syntax. */
export function portNameError(name: string): string | undefined {
  if (name.length > 15) return 'must be no more than 15 characters';
  if (!IANA_SVC_NAME.test(name)) return "must contain only lower case letters, digits or '-', starting and ending with a letter or digit";
  if (name.includes('--')) return "must not contain consecutive '-'";
  if (!/[a-z]/.test(name)) return 'must contain at least one letter';
  return undefined;
}
