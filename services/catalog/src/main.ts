import { runMain } from '../../../shared/src/service.js';
import { catalogService } from './service.js';

await runMain(catalogService);
