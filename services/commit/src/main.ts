import { runMain } from '#shared/service.js';
import { commitService } from './service.js';

await runMain(commitService);
