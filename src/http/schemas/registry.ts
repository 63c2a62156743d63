// Every named schema, referenced ones first: the app registers them all before the routes.

import type { TSchema } from 'typebox';
import { ErrorResponse, OpenAIErrorResponse, Embedding, StatusResponse } from './common.js';
import { EmbedResponse, TextRequest, ImageJsonRequest, ImageMultipartRequest } from './embed.js';
import {
  OpenAITextItem,
  OpenAIImageItem,
  OpenAIInputItem,
  OpenAIRequest,
  OpenAIEmbedding,
  OpenAIUsage,
  OpenAIResponse,
  OpenAIModel,
  OpenAIModelList,
} from './openai.js';
import { ModelInfo, ModelsResponse } from './models.js';
import {
  RerankTextItem,
  RerankImageItem,
  RerankItem,
  RerankRequest,
  RerankResult,
  RerankResponse,
  ClassifyJsonRequest,
  ClassifyMultipartRequest,
  LabelScore,
  ClassifyResponse,
} from './matching.js';

import {
  CollectionInfo,
  CollectionList,
  SearchTextQuery,
  SearchImageQuery,
  SearchIdQuery,
  SearchQuery,
  SearchRequest,
  SearchHit,
  SearchResponse,
} from './search.js';

export const SHARED_SCHEMAS: TSchema[] = [
  ErrorResponse,
  OpenAIErrorResponse,
  Embedding,
  EmbedResponse,
  TextRequest,
  ImageJsonRequest,
  ImageMultipartRequest,
  OpenAITextItem,
  OpenAIImageItem,
  OpenAIInputItem,
  OpenAIRequest,
  OpenAIEmbedding,
  OpenAIUsage,
  OpenAIResponse,
  ModelInfo,
  ModelsResponse,
  OpenAIModel,
  OpenAIModelList,
  RerankTextItem,
  RerankImageItem,
  RerankItem,
  RerankRequest,
  RerankResult,
  RerankResponse,
  ClassifyJsonRequest,
  ClassifyMultipartRequest,
  LabelScore,
  ClassifyResponse,
  StatusResponse,
  CollectionInfo,
  CollectionList,
  SearchTextQuery,
  SearchImageQuery,
  SearchIdQuery,
  SearchQuery,
  SearchRequest,
  SearchHit,
  SearchResponse,
];
