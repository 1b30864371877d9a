import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'src/**/gen/', '.strait/', 'src/dashboard/web/dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', name: ['test', 'it', 'describe', 'suite'], package: 'node:test' }] },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  // The layers of DESIGN.md §4: the data plane (proxy, gateway) and the control plane share only
  // src/api and src/identity, and neither reaches into the runtime or the CLI that run them.
  {
    files: ['src/proxy/**', 'src/gateway/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '(^|/)(control|runtime|cli)/', message: 'the proxy and the gateway never import the control plane, the runtime or the CLI (DESIGN.md §4)' }] }],
    },
  },
  {
    files: ['src/control/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '(^|/)(gateway|runtime|cli)/', message: 'the control plane never imports the gateway, the runtime or the CLI (DESIGN.md §4)' }] }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
);
