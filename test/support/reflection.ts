import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const reflectionRoot = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');
const definition = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [reflectionRoot], keepCase: true });
const ReflectionClient = (grpc.loadPackageDefinition(definition) as any).grpc.reflection.v1.ServerReflection;

/** One request/response exchange on the ServerReflectionInfo stream. */
function reflect(address: string, request: Record<string, string>): Promise<any> {
  const client = new ReflectionClient(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo({ deadline: Date.now() + 5000 });
    call.on('data', (response: any) => {
      call.end();
      client.close();
      if (response.error_response) reject(new Error(response.error_response.error_message));
      else resolve(response);
    });
    call.on('error', (err: Error) => {
      client.close();
      reject(err);
    });
    call.write(request);
  });
}

/** Lists the services a server exposes through grpc.reflection.v1, as grpcurl would. */
export async function listServices(address: string): Promise<string[]> {
  const response = await reflect(address, { list_services: '' });
  return response.list_services_response.service.map((s: { name: string }) => s.name).sort();
}

/** Resolves a fully-qualified symbol (e.g. a service) to the number of proto files describing it. */
export async function fileContainingSymbol(address: string, symbol: string): Promise<number> {
  const response = await reflect(address, { file_containing_symbol: symbol });
  return response.file_descriptor_response.file_descriptor_proto.length;
}
