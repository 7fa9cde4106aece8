import { runMain } from '#shared/service.js';
import { ingestionService } from './service.js';

await runMain(ingestionService);
