import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Served by rockit-edge at /apps/mc (packages/server/src/http/routes/console.routes.ts).
export default defineConfig({
  root: import.meta.dirname,
  base: '/apps/mc/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 600 },
});
