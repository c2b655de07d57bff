export * from './format/types.js';
