import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DeploymentService } from '../../services/deployment.service.js';
import { principal } from '../plugins/auth.js';
import { CleanupSchema, CreateDeploymentBody, DeploymentSchema, PatchDeploymentBody } from '@rockit/contract';
import { BODY_ERRORS, ListMeta, ListQuery, Name, Ok, Security, errorResponses, toRawListQuery } from '../schemas/common.js';

/** /be/v1/deployments (api.md §9.1; deployments.*). Secrets are accepted, stored encrypted and never answered. */
export const deploymentRoutes: FastifyPluginAsyncTypebox<{ services: { deployments: DeploymentService } }> = async (app, { services }) => {
  const tags = ['deployments'];
  const common = { config: { auth: 'user' as const } };

  app.get('/be/v1/deployments', {
    ...common,
    schema: {
      tags, summary: 'Lists deployments (CDN origins)', security: Security.user,
      querystring: Type.Object({
        ...ListQuery,
        name: Type.Optional(Type.String({ maxLength: 50, description: 'partial match' })),
        error: Type.Optional(Type.Boolean({ description: 'true: only deployments whose status is error; false: only ok' })),
      }),
      response: { 200: Ok({ ...ListMeta, deployments: Type.Array(Type.Partial(DeploymentSchema)) }), ...errorResponses(401, 403) },
    },
  }, async (req) => {
    const page = await services.deployments.list(principal(req), { name: req.query.name, error: req.query.error }, toRawListQuery(req.query));
    return { status: 'success' as const, total: page.total, offset: page.offset, limit: page.limit, deployments: page.items };
  });

  app.post('/be/v1/deployments', {
    ...common,
    schema: {
      tags, summary: 'Creates a deployment (an S3-compatible bucket or a folder)', security: Security.user,
      body: CreateDeploymentBody,
      response: { 201: Ok({ deployment: DeploymentSchema }, 'created'), ...errorResponses(401, 403, 409, ...BODY_ERRORS) },
    },
  }, async (req, reply) => {
    const deployment = await services.deployments.create(principal(req), req.body);
    return reply.code(201).send({ status: 'success' as const, deployment });
  });

  app.get('/be/v1/deployments/:name', {
    ...common,
    schema: {
      tags, summary: 'One deployment, with its last observed status and message', security: Security.user,
      params: Type.Object({ name: Name() }),
      response: { 200: Ok({ deployment: DeploymentSchema }), ...errorResponses(401, 403) },
    },
  }, async (req) => ({ status: 'success' as const, deployment: await services.deployments.get(principal(req), req.params.name) }));

  app.patch('/be/v1/deployments', {
    ...common,
    schema: {
      tags,
      summary: 'Changes a deployment (null removes an optional field; s3 is merged, so the secret need not be sent again)',
      security: Security.user,
      body: PatchDeploymentBody,
      response: { 200: Ok({ deployment: DeploymentSchema }), ...errorResponses(401, 403, ...BODY_ERRORS) },
    },
  }, async (req) => ({ status: 'success' as const, deployment: await services.deployments.patch(principal(req), req.body) }));

  app.delete('/be/v1/deployments/:name', {
    ...common,
    schema: {
      tags, summary: 'Deletes a deployment (409 in-use while an app names it), then removes the org\'s published files from it', security: Security.user,
      params: Type.Object({ name: Name() }),
      response: { 200: Ok({ cleanup: CleanupSchema }), ...errorResponses(401, 403, 409) },
    },
  }, async (req) => {
    const { cleanup } = await services.deployments.delete(principal(req), req.params.name);
    return { status: 'success' as const, cleanup };
  });
};
