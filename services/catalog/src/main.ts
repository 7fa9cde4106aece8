import { runMain } from '#shared/service.js';
import { catalogService } from './service.js';

await runMain(catalogService);
