import { runMain } from '../../../shared/src/service.js';
import { commitService } from './service.js';

await runMain(commitService);
